import { afterEach, describe, expect, it } from 'vitest'
import { CONSENSUS_ADMIN_PROTOCOL } from '../../src/consensus/admin.ts'
import type { CommittedEntry } from '../../src/consensus/commands.ts'
import { encodeRaftMessage, RAFT_PROTOCOL } from '../../src/consensus/messages.ts'
import { encode } from '../../src/transport/codec.ts'
import { TestCluster, until } from './consensus-helpers.ts'

/**
 * The consensus shell with real timers (10 ms ticks), real SQLite stores and an in-memory
 * transport: elections, replication to every peer, persistence across restarts, compaction,
 * hostile input, voter management, leave and the forced recovery.
 */
describe('consensus service', () => {
  let c: TestCluster | undefined
  afterEach(async () => {
    await c?.close()
    c = undefined
  })

  const grow = async (ids: string[], init: ConstructorParameters<typeof TestCluster>[1] = {}): Promise<TestCluster> => {
    const cl = new TestCluster(ids, init)
    c = cl
    cl.start(ids[0] as string, { bootstrap: true })
    for (const id of ids.slice(1)) cl.start(id)
    const want = Math.min(ids.length, 5)
    await until(`${want} voters`, () => cl.leader()?.svc.status().voters.filter((v) => v.role === 'voter').length === want, 10_000)
    return cl
  }

  it('bootstraps, adds joiners as learners, promotes them, and delivers every committed entry to every peer', async () => {
    const cl = await grow(['a', 'b', 'c'])
    const seen = new Map<string, CommittedEntry[]>()
    for (const p of cl.peers.values()) {
      const list: CommittedEntry[] = []
      seen.set(p.id, list)
      p.svc.on('committed', (e) => list.push(e))
    }
    const leader = cl.leader()!
    const pos = await leader.svc.proposeAndWait({ kind: 'assignments', service: 'web', revision: 1, slots: { 'web/0': 'b', 'web/1': 'c' } })
    for (const p of cl.peers.values()) {
      await until(`${p.id} applies ${pos.index}`, () => p.svc.status().appliedIndex >= pos.index)
      expect(seen.get(p.id)).toContainEqual({ term: pos.term, index: pos.index, kind: 'command', command: { kind: 'assignments', service: 'web', revision: 1, slots: { 'web/0': 'b', 'web/1': 'c' } } })
      expect(p.svc.assignments().get('web')).toMatchObject({ revision: 1, term: pos.term, index: pos.index })
      expect(p.svc.status().leader).toBe(leader.id)
    }
    const follower = [...cl.peers.values()].find((p) => p !== leader)!
    expect(follower.svc.propose({ kind: 'assignments', service: 'x', revision: 1, slots: {} })).toEqual({ ok: false, reason: 'not-leader', leader: leader.id })
    await expect(follower.svc.proposeAndWait({ kind: 'assignments', service: 'x', revision: 1, slots: {} })).rejects.toMatchObject({ code: 'not-leader' })
    // A follower learns the match indexes from the leader.
    const vs = await follower.svc.voters()
    expect(vs.map((v) => [v.id, v.role, v.leader])).toEqual([['a', 'voter', leader.id === 'a'], ['b', 'voter', leader.id === 'b'], ['c', 'voter', leader.id === 'c']])
    expect(vs.every((v) => v.match !== null && v.match >= pos.index)).toBe(true)
  })

  it('fences decisions older than the newest applied one', async () => {
    const cl = await grow(['a'])
    const leader = cl.leader()!
    const p1 = await leader.svc.proposeAndWait({ kind: 'assignments', service: 'web', revision: 1, slots: {} })
    const p2 = await leader.svc.proposeAndWait({ kind: 'assignments', service: 'web', revision: 2, slots: {} })
    expect(leader.svc.fence(p2.term, p2.index)).toEqual({ ok: true })
    expect(leader.svc.fence(p1.term, p1.index)).toMatchObject({ ok: false, reason: 'stale-index' })
    expect(leader.svc.fence(p2.term - 1, p2.index + 100)).toMatchObject({ ok: false, reason: 'stale-term', newest: { term: p2.term, index: p2.index } })
    expect(leader.svc.fence(p2.term + 1, 1)).toEqual({ ok: true })
    // The mark survives a restart.
    await cl.stop('a')
    const again = cl.start('a')
    expect(again.svc.fence(p1.term, p1.index)).toMatchObject({ ok: false, reason: 'stale-index' })
  })

  it('restarts from its store: same term and log, the state machine rebuilt, compaction keeping the log bounded', async () => {
    const cl = await grow(['a', 'b', 'c'], { compactEvery: 50 })
    const leader = cl.leader()!
    let last = { term: 0, index: 0 }
    for (let i = 0; i < 160; i++) last = await leader.svc.proposeAndWait({ kind: 'assignments', service: `s${i % 7}`, revision: i, slots: { x: 'a' } })
    for (const p of cl.peers.values()) await until(`${p.id} applied`, () => p.svc.status().appliedIndex >= last.index)
    for (const p of cl.peers.values()) {
      const st = p.svc.status()
      expect(st.firstIndex, `${p.id} compacted`).toBeGreaterThan(100)
      expect(st.lastIndex - st.firstIndex).toBeLessThan(80)
      expect(p.svc.stats().snapshotsTaken).toBeGreaterThan(0)
    }
    const victim = [...cl.peers.values()].find((p) => p !== leader)!
    const before = victim.svc.status()
    await cl.stop(victim.id)
    const back = cl.start(victim.id)
    expect(back.svc.status()).toMatchObject({ term: before.term, commitIndex: before.commitIndex, firstIndex: before.firstIndex })
    await until('state rebuilt', () => back.svc.assignments().size === 7 && back.svc.status().appliedIndex >= last.index)
    expect(back.svc.assignments().get('s6')).toMatchObject({ revision: 153 })
  })

  it('never throws on hostile Raft or admin messages: drops and counts them', async () => {
    const cl = await grow(['a', 'b', 'c'])
    const leader = cl.leader()!
    const target = [...cl.peers.values()].find((p) => p !== leader)!
    const other = [...cl.peers.values()].find((p) => p !== leader && p !== target)!
    const before = target.svc.stats()
    const junk: Uint8Array[] = [new Uint8Array(0), new Uint8Array([0xc1]), encode({ type: 'append', from: leader.id }), encode('hello'), new Uint8Array(2_000_000)]
    for (const j of junk) {
      cl.net.inject(leader.id, target.id, RAFT_PROTOCOL, j)
      cl.net.inject(leader.id, target.id, CONSENSUS_ADMIN_PROTOCOL, j)
    }
    // A well-formed message whose `from` is not its sender (a forged vote request at a huge term).
    const forged = encodeRaftMessage({ type: 'vote', from: leader.id, to: target.id, term: 10_000, lastIndex: 10_000, lastTerm: 10_000, transfer: true })
    cl.net.inject(other.id, target.id, RAFT_PROTOCOL, forged)
    cl.net.inject(other.id, target.id, CONSENSUS_ADMIN_PROTOCOL, encode({ t: 'remove', from: leader.id, req: 1, id: target.id }))
    const after = target.svc.stats()
    expect(after.invalid - before.invalid).toBe(junk.length * 2)
    expect(after.forged - before.forged).toBe(2)
    expect(target.svc.status().term).toBeLessThan(10_000)
    const pos = await cl.leader()!.svc.proposeAndWait({ kind: 'assignments', service: 'still', revision: 1, slots: {} })
    await until('still replicating', () => target.svc.status().appliedIndex >= pos.index)
  })

  it('a follower voter leaves: it is removed through the log before it goes, and not re-added', async () => {
    const cl = await grow(['a', 'b', 'c'])
    const leader = cl.leader()!
    const leaver = [...cl.peers.values()].find((p) => p !== leader)!
    expect(await leaver.svc.leave({ timeoutMs: 5_000 })).toBe(true)
    expect(leader.svc.status().voters.map((v) => v.id)).not.toContain(leaver.id)
    await new Promise((r) => setTimeout(r, 200))
    expect(leader.svc.status().voters.map((v) => v.id)).not.toContain(leaver.id)
  })

  it('the leader leaves: it hands leadership over, then is removed', async () => {
    const cl = await grow(['a', 'b', 'c'])
    const leader = cl.leader()!
    expect(await leader.svc.leave({ timeoutMs: 5_000 })).toBe(true)
    const next = cl.leader()!
    expect(next.id).not.toBe(leader.id)
    expect(next.svc.status().voters.map((v) => v.id)).not.toContain(leader.id)
    expect(next.svc.status().voters).toHaveLength(2)
  })

  it('voters remove through the log from a follower; an unknown peer is refused', async () => {
    const cl = await grow(['a', 'b', 'c'])
    const leader = cl.leader()!
    const [x, y] = [...cl.peers.values()].filter((p) => p !== leader)
    await cl.stop(y!.id)
    cl.membership.set(y!.id, 'dead')
    const r = await x!.svc.removeVoter(y!.id)
    expect(r).toEqual({ id: y!.id, forced: false })
    await until('removal seen by the leader', () => !leader.svc.status().voters.some((v) => v.id === y!.id))
    await expect(x!.svc.removeVoter('nobody')).rejects.toMatchObject({ code: 'not-a-voter' })
  })

  it('quorum lost for good: without a leader the removal needs --force, which lets the survivor lead alone', async () => {
    const cl = await grow(['a', 'b', 'c'])
    const survivor = cl.leader()!
    for (const p of [...cl.peers.values()].filter((p) => p !== survivor)) {
      await cl.stop(p.id)
      cl.membership.set(p.id, 'dead')
    }
    await until('the lone peer steps down', () => survivor.svc.status().leaderId === null, 5_000)
    const [g1, g2] = ['a', 'b', 'c'].filter((id) => id !== survivor.id) as [string, string]
    await expect(survivor.svc.removeVoter(g1, { timeoutMs: 300 })).rejects.toMatchObject({ code: 'no-leader' })
    expect(await survivor.svc.removeVoter(g1, { force: true, timeoutMs: 300 })).toEqual({ id: g1, forced: true })
    expect(await survivor.svc.removeVoter(g2, { force: true, timeoutMs: 300 })).toEqual({ id: g2, forced: true })
    await until('the survivor leads alone', () => survivor.svc.status().role === 'leader', 5_000)
    expect(survivor.svc.status().voters.map((v) => v.id)).toEqual([survivor.id])
    await survivor.svc.proposeAndWait({ kind: 'assignments', service: 'after', revision: 1, slots: {} })
  })

  it('a write failure stops consensus on that peer and reports it', async () => {
    const cl = await grow(['a'])
    const p = cl.leader()!
    p.store.close()
    expect(p.svc.propose({ kind: 'assignments', service: 'x', revision: 1, slots: {} }).ok).toBe(true)
    await until('fatal reported', () => p.fatal.length === 1)
    expect(String(p.fatal[0])).toMatch(/closed/)
    cl.peers.delete('a')
  })
})
