import { describe, expect, it } from 'vitest'
import { suspicionBounds } from '../../src/membership/formulas.ts'
import { DEFAULT_MEMBERSHIP_CONFIG } from '../../src/membership/types.ts'
import { MembershipSim } from '../../src/sim/membership-cluster.ts'
import type { NetFaults } from '../../src/sim/network.ts'

/**
 * Seeded whole-cluster simulations of the membership core. Every message goes through the wire
 * codec and schemas (wire: true). A failure message names its seed; rerun one with SEED=n.
 */
const SEEDS = process.env.SEED !== undefined ? [Number(process.env.SEED)] : [1, 2, 3, 4, 5, 6, 7, 8]
const FAULTY: Partial<NetFaults> = { delay: [1, 10], loss: 0.05, dup: 0.05 }
const cfg = DEFAULT_MEMBERSHIP_CONFIG

/** N peers that join through the first one, a few ms apart, under `faults`. */
function joinedCluster(seed: number, n: number, faults: Partial<NetFaults> = FAULTY): { sim: MembershipSim; ids: string[] } {
  const sim = new MembershipSim({ seed, faults, wire: true })
  const ids = sim.add(n)
  const first = ids[0] as string
  sim.start(first)
  for (const id of ids.slice(1)) {
    sim.runFor(sim.rng.next() * 50)
    sim.start(id, { join: [first] })
  }
  return { sim, ids }
}

/** Stop the faults and wait for every running peer to hold the same, correct view. */
function converge(sim: MembershipSim, why: string, maxMs = 30_000): void {
  sim.net.setFaults({ loss: 0, dup: 0 })
  const took = sim.runUntil(() => sim.convergence() === undefined, maxMs, 50)
  expect(took, `seed ${sim.seed}: ${why}: no convergence within ${maxMs} ms: ${sim.convergence()}`).not.toBeUndefined()
  expect(sim.violations, `seed ${sim.seed}: invariant violations`).toEqual([])
}

/** Record every time any peer marks `id` with `state`. */
function watch(sim: MembershipSim, id: string, state: string): string[] {
  const seen: string[] = []
  sim.onChange((observer, m, _prev, t) => {
    if (m.id === id && m.state === state) seen.push(`${observer}@${t.toFixed(0)}`)
  })
  return seen
}

describe('membership simulation', () => {
  for (const seed of SEEDS) {
    describe(`seed ${seed}`, () => {
      it('(a) peers joining through one seed under loss, delay and duplication converge once faults stop', () => {
        const n = 8 + (seed % 13)
        const { sim, ids } = joinedCluster(seed, n)
        sim.runFor(10_000)
        converge(sim, `${n} peers joining`)
        for (const id of ids) expect(sim.peers.get(id)?.core?.members(), `seed ${seed}`).toHaveLength(n)
      })

      it('(b) a crashed peer is declared dead by every other within a bounded time', () => {
        const n = 10
        const { sim, ids } = joinedCluster(seed, n, { delay: [1, 5] })
        converge(sim, 'before the crash')
        const victim = ids[1 + (seed % (n - 1))] as string
        const falseDeaths: string[] = []
        sim.onChange((o, m) => { if (m.state === 'dead' && m.id !== victim) falseDeaths.push(`${o} saw ${m.id} dead`) })
        sim.crash(victim)
        // Probe, indirect probe, then a suspicion that gets confirmations; generous bound: the
        // longest suspicion plus two probe rounds.
        const bound = suspicionBounds(n, cfg).max + 2 * n * cfg.probeIntervalMs
        const took = sim.runUntil(() => sim.up().every((o) => sim.member(o, victim)?.state === 'dead'), bound, 10)
        expect(took, `seed ${seed}: not all peers saw ${victim} dead within ${bound} ms`).not.toBeUndefined()
        expect(falseDeaths, `seed ${seed}`).toEqual([])
        converge(sim, 'after the crash')
      })

      it('(c) a briefly stalled or cut-off peer refutes its suspicion and is never declared dead', () => {
        const n = 10
        const { sim, ids } = joinedCluster(seed, n)
        converge(sim, 'before the stall')
        sim.net.setFaults(FAULTY)
        const stalled = ids[2] as string
        const cut = ids[5] as string
        const deadStalled = watch(sim, stalled, 'dead')
        const deadCut = watch(sim, cut, 'dead')
        const suspected = watch(sim, cut, 'suspect')
        sim.pause(stalled, 300) // a long GC pause
        sim.runFor(3_000)
        const before = sim.member(cut, cut)?.incarnation ?? 0
        sim.net.partition([[cut]]) // cut off for less than the shortest suspicion
        sim.runFor(Math.floor(suspicionBounds(n, cfg).min * 0.6))
        sim.net.heal()
        sim.runFor(5_000)
        expect(deadStalled, `seed ${seed}: stalled peer declared dead`).toEqual([])
        expect(deadCut, `seed ${seed}: cut-off peer declared dead`).toEqual([])
        if (suspected.length > 0) expect(sim.member(cut, cut)?.incarnation, `seed ${seed}: no refutation`).toBeGreaterThan(before)
        converge(sim, 'after the stall')
      })

      it('(d) a partition heals: each side declares the other dead, then all converge', () => {
        const n = 12
        const { sim, ids } = joinedCluster(seed, n, { delay: [1, 10], loss: 0.02, dup: 0.02 })
        converge(sim, 'before the partition')
        const cut = 3 + (seed % 4)
        const left = ids.slice(0, cut)
        const right = ids.slice(cut)
        sim.net.partition([left, right])
        // The minority side is slower: its probes go unanswered and its relays across the cut
        // send no nacks, so its awareness rises and it probes less often (Lifeguard at work).
        const sides = (): boolean =>
          left.every((l) => right.every((r) => sim.member(l, r)?.state === 'dead' && sim.member(r, l)?.state === 'dead'))
        const took = sim.runUntil(sides, 60_000, 100)
        expect(took, `seed ${seed}: the sides did not declare each other dead`).not.toBeUndefined()
        sim.net.heal()
        converge(sim, 'after healing', 60_000)
      })

      it('(e) a peer that leaves is left everywhere, never dead', () => {
        const n = 10
        const { sim, ids } = joinedCluster(seed, n)
        converge(sim, 'before leaving')
        sim.net.setFaults(FAULTY)
        const leaver = ids[1 + (seed % (n - 1))] as string
        const dead = watch(sim, leaver, 'dead')
        sim.leave(leaver)
        sim.runFor(10_000)
        converge(sim, 'after leaving')
        for (const o of sim.up()) expect(sim.member(o, leaver)?.state, `seed ${seed}: ${o}'s view`).toBe('left')
        expect(dead, `seed ${seed}`).toEqual([])
      })

      it('(f) a crashed peer that restarts with a higher incarnation is alive again everywhere', () => {
        const n = 8
        const { sim, ids } = joinedCluster(seed, n, { delay: [1, 5] })
        converge(sim, 'before the crash')
        const victim = ids[3] as string
        const before = sim.member(victim, victim)?.incarnation ?? -1
        sim.crash(victim)
        sim.runUntil(() => sim.up().every((o) => sim.member(o, victim)?.state === 'dead'), 20_000)
        sim.start(victim, { join: [ids[0] as string] })
        converge(sim, 'after the restart')
        for (const o of sim.up()) expect(sim.member(o, victim)?.incarnation, `seed ${seed}`).toBe(before + 1)
      })
    })
  }
})

describe('the LAN timing goal with the default configuration', () => {
  const LAN: Partial<NetFaults> = { delay: [0.2, 1.5] }

  it('5 peers: the median time until every other peer lists a killed peer dead is at most 2 s', () => {
    const times: number[] = []
    for (let seed = 100; seed < 130; seed++) {
      const { sim, ids } = joinedCluster(seed, 5, LAN)
      converge(sim, 'before the kill')
      sim.runFor(500 + sim.rng.next() * 1000)
      const victim = ids[1 + (seed % 4)] as string
      sim.crash(victim)
      const took = sim.runUntil(() => sim.up().every((o) => sim.member(o, victim)?.state === 'dead'), 20_000, 5)
      expect(took, `seed ${seed}: not detected`).not.toBeUndefined()
      times.push(took ?? Number.POSITIVE_INFINITY)
    }
    times.sort((a, b) => a - b)
    const median = times[Math.floor(times.length / 2)] as number
    expect(median, `detection times: ${times.join(', ')}`).toBeLessThanOrEqual(2000)
  })

  it('5 peers: a 300 ms stall of any peer never gets it declared dead', () => {
    for (let seed = 200; seed < 230; seed++) {
      const { sim, ids } = joinedCluster(seed, 5, LAN)
      converge(sim, 'before the stall')
      sim.runFor(sim.rng.next() * 1000)
      const stalled = ids[seed % 5] as string
      const dead = watch(sim, stalled, 'dead')
      sim.pause(stalled, 300)
      sim.runFor(5_000)
      expect(dead, `seed ${seed}`).toEqual([])
      converge(sim, 'after the stall')
    }
  })
})
