/**
 * Scenario tests of the voter policy (src/consensus/voters.ts) driving simulated Raft cores
 * (raft-cluster.ts, with its invariant checks after every event): the leader asks the policy
 * every 100 ms, as the real shell does, with a membership view built from which peers are up.
 */
import { describe, expect, it } from 'vitest'
import { DEFAULT_VOTER_POLICY, nextVoterChange, type PolicyMember, type VoterPolicyConfig } from '../../src/consensus/voters.ts'
import { RaftCluster } from './raft-cluster.ts'

/** A cluster whose leader follows the voter policy; membership says a crashed peer is dead since its crash. */
class ManagedCluster {
  readonly c: RaftCluster
  readonly policy: VoterPolicyConfig
  readonly downSince = new Map<string, number>()
  readonly actions: string[] = []

  constructor(seed: number, ids: string[], policy: Partial<VoterPolicyConfig>) {
    // Like a real cluster: only the first peer is bootstrapped; the others start empty.
    this.c = new RaftCluster({ seed, ids, voters: [ids[0] as string] })
    this.policy = { ...DEFAULT_VOTER_POLICY, ...policy }
    this.c.sched.every(100, () => this.#step(), 0)
  }

  #members(): PolicyMember[] {
    return this.c.opts.ids.map((id) => {
      const down = this.downSince.get(id)
      return down === undefined ? { id, state: 'alive', since: 0 } : { id, state: 'dead', since: down }
    })
  }

  #step(): void {
    const leader = this.c.leader()
    if (leader === undefined) return
    const st = this.c.status(leader)
    if (st.progress === undefined) return
    const a = nextVoterChange(
      { self: leader, voters: st.voters, learners: st.learners, progress: st.progress, lastIndex: st.lastIndex, pending: false, transferring: st.transferringTo !== undefined, members: this.#members(), removals: [], now: this.c.now() },
      this.policy,
    )
    if (a === undefined) return
    if (a.type === 'transfer') {
      this.c.transfer(leader, a.to)
      return
    }
    const r = this.c.proposeConfChange(leader, { type: a.type === 'demote' ? 'add-learner' : a.type, id: a.id })
    if (r.ok) this.actions.push(`${a.type} ${a.id}`)
  }

  crash(id: string): void {
    this.c.crash(id)
    this.downSince.set(id, this.c.now())
  }

  restart(id: string): void {
    this.c.restart(id)
    this.downSince.delete(id)
  }

  /** The leader's configuration once nothing changes for a while. */
  settle(pred: (voters: string[], learners: string[]) => boolean, maxMs = 30_000): { voters: string[]; learners: string[] } {
    const ok = this.c.runUntil(() => {
      const l = this.c.leader()
      if (l === undefined) return false
      const st = this.c.status(l)
      return st.commit === st.lastIndex && pred(st.voters, st.learners)
    }, maxMs)
    const l = this.c.leader()
    const st = l === undefined ? undefined : this.c.status(l)
    expect(ok, `did not settle; actions: ${this.actions.join('; ')}; voters ${st?.voters.join(',')}; learners ${st?.learners.join(',')}`).toBe(true)
    return { voters: st?.voters ?? [], learners: st?.learners ?? [] }
  }

  /** Commit one entry and check every live member applies it. */
  commit(text: string): void {
    const leader = this.c.awaitLeader()
    expect(this.c.propose(leader, text).ok).toBe(true)
    const live = this.c.opts.ids.filter((id) => this.c.isUp(id))
    expect(this.c.runUntil(() => live.every((id) => this.c.applied(id).includes(text)), 5_000)).toBe(true)
  }
}

describe('voter management (policy + simulated cores)', () => {
  it('grows from one bootstrapped voter to --voters 3 with learners, and replaces a voter that dies', () => {
    const ids = ['p1', 'p2', 'p3', 'p4', 'p5']
    const m = new ManagedCluster(71, ids, { maxVoters: 3, deadGraceMs: 5_000 })
    const first = m.settle((v, l) => v.length === 3 && l.length === 2)
    m.commit('grown')

    const leader = m.c.awaitLeader()
    const victim = first.voters.find((id) => id !== leader) as string
    m.crash(victim)
    // Within the grace nothing changes; the two others keep committing.
    m.c.runFor(3_000)
    expect(m.c.status(m.c.awaitLeader()).voters).toContain(victim)
    m.commit('during-grace')
    // After it: removed, and a healthy learner promoted, one change at a time.
    const after = m.settle((v) => v.length === 3 && !v.includes(victim))
    expect(after.voters).not.toContain(victim)
    expect(after.learners).not.toContain(victim)
    expect(m.actions.slice(-2)).toEqual([`remove ${victim}`, expect.stringMatching(/^add-voter /)])
    m.commit('replaced')
    // The new set survives another voter failure.
    const l2 = m.c.awaitLeader()
    m.crash(after.voters.find((id) => id !== l2) as string)
    m.commit('after-second-failure')

    // The first victim comes back: it becomes a learner again (the voter seats are full).
    m.restart(victim)
    m.settle((_v, l) => l.includes(victim))
    m.commit('welcome-back')
  })

  it('walks the voter set 5 → 3 → 5 as --voters changes, one change at a time', () => {
    const ids = ['p1', 'p2', 'p3', 'p4', 'p5']
    const m = new ManagedCluster(72, ids, { maxVoters: 5 })
    m.settle((v) => v.length === 5)
    m.commit('five')

    m.policy.maxVoters = 3
    const three = m.settle((v, l) => v.length === 3 && l.length === 2)
    expect(three.voters).toContain(m.c.leader())
    m.commit('three')
    // Three voters survive one failure.
    const leader = m.c.awaitLeader()
    const down = three.voters.find((id) => id !== leader) as string
    m.crash(down)
    m.commit('three-minus-one')
    m.restart(down)

    m.policy.maxVoters = 5
    m.settle((v, l) => v.length === 5 && l.length === 0)
    m.commit('five-again')
    // Five voters survive two failures.
    const l5 = m.c.awaitLeader()
    for (const id of ids.filter((x) => x !== l5).slice(0, 2)) m.crash(id)
    m.commit('five-minus-two')
    const changes = m.actions.filter((a) => a.startsWith('demote') || a.startsWith('add-voter'))
    expect(changes.filter((a) => a.startsWith('demote'))).toHaveLength(2)
  })

  it('a voter that stays dead forever in a 3-voter set with no spare: removed, leaving 2 that still commit', () => {
    const ids = ['p1', 'p2', 'p3']
    const m = new ManagedCluster(73, ids, { maxVoters: 3, deadGraceMs: 2_000 })
    m.settle((v) => v.length === 3)
    const leader = m.c.awaitLeader()
    const victim = ids.find((id) => id !== leader) as string
    m.crash(victim)
    const two = m.settle((v) => v.length === 2)
    expect(two.voters).not.toContain(victim)
    m.commit('two-left')
  })
})
