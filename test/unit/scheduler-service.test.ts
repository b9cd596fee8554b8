import { afterEach, describe, expect, it } from 'vitest'
import { systemClock } from '../../src/core/clock.ts'
import { silentLogger } from '../../src/core/logger.ts'
import type { Member, MemberState } from '../../src/membership/types.ts'
import { encodeService } from '../../src/model/index.ts'
import type { AssignmentView } from '../../src/scheduler/assignments.ts'
import { createSchedulerService, type SchedulerService } from '../../src/scheduler/service.ts'
import type { ObservedReplica } from '../../src/scheduler/types.ts'
import type { Entry } from '../../src/state/types.ts'
import { TestCluster, until, type TestPeer } from './consensus-helpers.ts'
import { obs, svc } from './scheduler-helpers.ts'

type Fn = () => void

/** What the scheduler sees: desired services, host states, and agents that run what they are assigned. */
class World {
  readonly specs = new Map<string, Entry>()
  readonly states = new Map<string, MemberState>()
  readonly listeners = { state: new Set<Fn>(), membership: new Set<Fn>() }
  readonly ids: string[]
  constructor(ids: string[]) {
    this.ids = ids
  }

  put(name: string, replicas: number): void {
    const prev = this.specs.get(name)
    this.specs.set(name, { key: name, hlc: { wall: 1, logical: 0, node: 'a' }, value: encodeService(svc(name, { replicas })), revision: (prev?.revision ?? 0) + 1 })
    for (const f of this.listeners.state) f()
  }

  setState(id: string, s: MemberState): void {
    this.states.set(id, s)
    for (const f of this.listeners.membership) f()
  }

  members(): Member[] {
    return this.ids.map((id) => ({ id, name: `n-${id}`, address: `mem:${id}`, labels: {}, state: this.states.get(id) ?? 'alive', incarnation: 0, since: 0 }))
  }

  /** Agents on alive hosts run every assignment of theirs. */
  observed(table: AssignmentView): ObservedReplica[] {
    return table.all().filter((a) => (this.states.get(a.host) ?? 'alive') === 'alive').map((a) => obs(a.service, a.slot, a.host, a.generation))
  }

  scheduler(p: TestPeer): SchedulerService {
    const sub = (set: Set<Fn>) => ({ on: (_: 'change', f: Fn) => void set.add(f), off: (_: 'change', f: Fn) => void set.delete(f) })
    return createSchedulerService(
      { debounceMs: 10, intervalMs: 200 },
      {
        consensus: p.svc,
        state: { live: () => [...this.specs.values()], ...sub(this.listeners.state) },
        membership: { members: () => this.members(), ...sub(this.listeners.membership) },
        observed: () => this.observed(p.svc.table()),
        drained: () => false,
        clock: systemClock,
        logger: silentLogger(),
      },
    )
  }
}

const perHost = (t: AssignmentView): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const a of t.all()) out[a.host] = (out[a.host] ?? 0) + 1
  return out
}

describe('scheduler service (leader-only, over the consensus service)', () => {
  let c: TestCluster | undefined
  const scheds: SchedulerService[] = []
  afterEach(async () => {
    for (const s of scheds.splice(0)) s.stop()
    await c?.close()
    c = undefined
  })

  const boot = async (ids: string[], init: ConstructorParameters<typeof TestCluster>[1] = {}): Promise<{ cl: TestCluster; w: World; by: Map<string, SchedulerService> }> => {
    const cl = new TestCluster(ids, init)
    c = cl
    cl.start(ids[0]!, { bootstrap: true })
    for (const id of ids.slice(1)) cl.start(id)
    await until('3 voters', () => cl.leader()?.svc.status().voters.filter((v) => v.role === 'voter').length === ids.length, 10_000)
    const w = new World(ids)
    const by = new Map<string, SchedulerService>()
    for (const p of cl.peers.values()) {
      const s = w.scheduler(p)
      s.start()
      scheds.push(s)
      by.set(p.id, s)
    }
    return { cl, w, by }
  }

  it('places 6 replicas 2/2/2 in one committed command that every peer applies; a dead host is emptied in the next round', async () => {
    const { cl, w, by } = await boot(['a', 'b', 'c'])
    const leader = cl.leader()!
    await until('a session on the leader', () => by.get(leader.id)!.leading())
    expect([...by].filter(([, s]) => s.leading()).map(([id]) => id)).toEqual([leader.id])
    w.put('web', 6)
    for (const p of cl.peers.values()) await until(`${p.id} holds 6`, () => p.svc.table().size === 6)
    for (const p of cl.peers.values()) expect(perHost(p.svc.table())).toEqual({ a: 2, b: 2, c: 2 })
    await new Promise((r) => setTimeout(r, 300)) // quiet rounds: nothing more to decide
    const ls = by.get(leader.id)!.stats()
    expect(ls).toMatchObject({ proposed: 1, committed: 1, failed: 0, errors: 0 })
    expect(ls.rounds).toBeGreaterThan(1)
    for (const [id, s] of by) if (id !== leader.id) expect(s.stats().proposed).toBe(0)

    const victim = ['a', 'b', 'c'].find((id) => id !== leader.id)!
    w.setState(victim, 'dead')
    for (const p of cl.peers.values()) await until(`${p.id} moved off ${victim}`, () => (perHost(p.svc.table())[victim] ?? 0) === 0 && p.svc.table().size === 6)
    const table = leader.svc.table()
    expect(Object.values(perHost(table))).toEqual([3, 3])
    expect(table.all().filter((a) => a.generation === 2)).toHaveLength(2)
    expect(by.get(leader.id)!.stats().proposed).toBe(2)
  })

  it('explains what cannot be placed', async () => {
    const { cl, w, by } = await boot(['a', 'b', 'c'])
    const leader = cl.leader()!
    w.specs.set('big', { key: 'big', hlc: { wall: 1, logical: 0, node: 'a' }, value: encodeService(svc('big', { replicas: 2, placement: { constraints: [{ attribute: 'node.labels', label: 'gpu', op: 'in', values: ['yes'] }] } })), revision: 3 })
    by.get(leader.id)!.poke()
    await until('an explanation', () => by.get(leader.id)!.explain().explain['big'] !== undefined)
    const ex = by.get(leader.id)!.explain()
    expect(ex).toMatchObject({ leading: true, term: leader.svc.status().term })
    expect(ex.pending.filter((p) => p.service === 'big')).toHaveLength(2)
    expect(ex.explain['big']).toMatch(/2 of 2/)
    const follower = [...by].find(([id]) => id !== leader.id)![1]
    expect(follower.explain()).toEqual({ leading: false, term: null, at: null, explain: {}, pending: [] })
  })

  it('a deposed leader stops proposing; the new leader takes over from the committed table; restarts do not double-apply', async () => {
    const { cl, w, by } = await boot(['a', 'b', 'c'], { compactEvery: 3 })
    const old = cl.leader()!
    await until('a session', () => by.get(old.id)!.leading())
    w.put('web', 6)
    await until('placed', () => [...cl.peers.values()].every((p) => p.svc.table().size === 6))
    const before = old.svc.table().snapshot()

    // Cut the leader off: check-quorum deposes it, the others elect a new one.
    cl.net.down.add(old.id)
    w.setState(old.id, 'dead')
    await until('old leader steps down', () => !by.get(old.id)!.leading(), 5_000)
    const proposedByOld = by.get(old.id)!.stats().proposed
    await until('a new leader', () => [...cl.peers.values()].some((p) => p.id !== old.id && p.svc.status().role === 'leader'), 5_000)
    const next = [...cl.peers.values()].find((p) => p.id !== old.id && p.svc.status().role === 'leader')!
    await until('moved off the old leader', () => (perHost(next.svc.table())[old.id] ?? 0) === 0 && next.svc.table().size === 6, 5_000)
    expect(next.svc.table().position().term).toBeGreaterThan(before.term)
    // Slots that stayed keep their committed generation; moved ones got a newer one.
    for (const a of before.assignments) {
      const now = next.svc.table().get(a.service, a.slot)!
      if (a.host === old.id) expect(now.generation).toBe(a.generation + 1)
      else expect(now).toEqual(a)
    }
    await new Promise((r) => setTimeout(r, 300))
    expect(by.get(old.id)!.stats().proposed).toBe(proposedByOld)

    // The old leader comes back as a follower and catches up; a restart replays over its snapshot.
    by.get(old.id)!.stop()
    cl.net.down.delete(old.id)
    w.setState(old.id, 'alive')
    const want = JSON.stringify(next.svc.table().snapshot())
    await until('old leader catches up', () => JSON.stringify(old.svc.table().snapshot()) === JSON.stringify(next.svc.table().snapshot()), 5_000)
    // Restart it: the log replays over its snapshot (compactEvery 3), nothing is applied twice.
    expect(old.svc.stats().snapshotsTaken + old.svc.status().firstIndex).toBeGreaterThan(1)
    await cl.stop(old.id)
    const back = cl.start(old.id)
    await until('restored after restart', () => JSON.stringify(back.svc.table().snapshot()) === want, 5_000)
    expect(JSON.stringify(cl.peer(old.id).svc.table().snapshot())).toBe(want)
  })
})
