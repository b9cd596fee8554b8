import { describe, expect, it } from 'vitest'
import { StateSim } from '../../src/sim/state-cluster.ts'
import type { Entry, StateConfig } from '../../src/state/types.ts'

/** Deterministic desired-state scenarios on the simulation (wire codec on). */
const H = 30_000
const CFG: Partial<StateConfig> = { antiEntropyIntervalMs: 500, tombstoneHorizonMs: H, gcIntervalMs: 1_000, aliveEveryMs: 1_000, maxDriftMs: 5_000 }
const enc = new TextEncoder()
const dec = new TextDecoder()
const val = (s: string): Uint8Array => enc.encode(s)
const text = (e: Entry | undefined): string | null | undefined => (e === undefined ? undefined : e.value === null ? null : dec.decode(e.value))

function cluster(n: number, seed = 1, config: Partial<StateConfig> = CFG): { sim: StateSim; ids: string[] } {
  const sim = new StateSim({ seed, wire: true, skewMs: 100, config, faults: { delay: [1, 10] } })
  const ids = sim.add(n)
  sim.start(ids[0] as string, { founder: true })
  for (const id of ids.slice(1)) sim.start(id)
  sim.runFor(3_000)
  return { sim, ids }
}

function converge(sim: StateSim, maxMs = 20_000): number {
  const took = sim.runUntil(() => sim.convergence() === undefined, maxMs, 50)
  expect(took, `no convergence within ${maxMs} ms: ${sim.convergence()}`).not.toBeUndefined()
  expect(sim.violations).toEqual([])
  return took as number
}

const at = (sim: StateSim, id: string, key: string): string | null | undefined => text(sim.core(id)?.get(key))

describe('desired-state scenarios', () => {
  it('peers in sync exchange only root digests: a few dozen bytes per peer per second', () => {
    const { sim, ids } = cluster(20)
    for (let i = 0; i < 500; i++) sim.apply(ids[i % 20] as string, [{ key: `svc-${i}`, value: val(`image=app:${i} replicas=3`.padEnd(400, '.')) }])
    converge(sim)
    sim.runFor(5_000)
    sim.resetTraffic()
    sim.runFor(20_000)
    expect(Object.keys(sim.traffic.direct).sort()).toEqual(['root', 'same'])
    const bytes = Object.values(sim.traffic.direct).reduce((s, c) => s + c.bytes, 0)
    const perPeerPerSec = bytes / 20 / 20
    expect(perPeerPerSec).toBeLessThan(120)
    expect(sim.traffic.gossipHops.msgs).toBe(0)
  })

  it('writes on both sides of a partition converge on the later write, and nothing else is lost', () => {
    const { sim, ids } = cluster(6, 2)
    const [a, b] = [ids[0] as string, ids[5] as string]
    sim.apply(a, [{ key: 'web', value: val('v1') }, { key: 'db', value: val('d1') }])
    converge(sim)
    sim.net.partition([ids.slice(0, 3), ids.slice(3)])
    sim.apply(a, [{ key: 'web', value: val('left') }, { key: 'only-left', value: val('L') }])
    sim.runFor(1_000)
    sim.apply(b, [{ key: 'web', value: val('right, later') }, { key: 'only-right', value: val('R') }, { key: 'db', value: null }])
    sim.runFor(10_000)
    expect(at(sim, a, 'web')).toBe('left')
    expect(at(sim, b, 'web')).toBe('right, later')
    sim.net.heal()
    converge(sim)
    for (const id of ids) {
      expect(at(sim, id, 'web')).toBe('right, later')
      expect(at(sim, id, 'only-left')).toBe('L')
      expect(at(sim, id, 'only-right')).toBe('R')
      expect(at(sim, id, 'db')).toBeNull()
    }
    // History is local: the left side saw its own overwritten write; the right side never did
    // (anti-entropy sends only the winners). The newest revision is the same everywhere.
    for (const id of ids.slice(0, 3)) expect(sim.core(id)?.history('web').map(text)).toEqual(['v1', 'left', 'right, later'])
    for (const id of ids.slice(3)) expect(sim.core(id)?.history('web').map(text)).toEqual(['v1', 'right, later'])
  })

  it('a peer that was down during 50 changes catches up after restart, by anti-entropy alone', () => {
    const { sim, ids } = cluster(8, 3)
    for (let i = 0; i < 30; i++) sim.apply(ids[i % 8] as string, [{ key: `svc-${i}`, value: val(`v0-${i}`) }])
    converge(sim)
    const down = ids[4] as string
    sim.crash(down)
    for (let i = 0; i < 50; i++) {
      const k = `svc-${i % 40}`
      sim.apply(ids[i % 4] as string, [{ key: k, value: i % 7 === 0 ? null : val(`v1-${i}`) }])
      sim.runFor(100)
    }
    sim.runFor(2_000)
    sim.start(down)
    expect(sim.core(down)?.status()).toBe('current')
    const took = converge(sim)
    expect(took).toBeLessThan(5_000)
  })

  it('a peer down for longer than the horizon does not resurrect collected tombstones', () => {
    const { sim, ids } = cluster(6, 4)
    sim.apply(ids[0] as string, [{ key: 'web', value: val('w') }, { key: 'db', value: val('d') }, { key: 'cache', value: val('c') }])
    converge(sim)
    const sleeper = ids[3] as string
    sim.crash(sleeper)
    sim.apply(ids[1] as string, [{ key: 'db', value: null }, { key: 'cache', value: val('c2') }])
    sim.runFor(H + 10_000)
    for (const id of sim.up()) expect(sim.core(id)?.get('db'), `${id} should have collected db`).toBeUndefined()
    let wentBack = 0
    sim.onEffect((peer, eff) => { if (eff.type === 'changed' && eff.key === 'db' && eff.entry.value !== null && peer !== sleeper) wentBack++ })
    sim.start(sleeper)
    expect(sim.core(sleeper)?.status()).toBe('joining')
    expect(at(sim, sleeper, 'db')).toBe('d')
    converge(sim)
    expect(wentBack).toBe(0)
    for (const id of ids) {
      expect(sim.core(id)?.get('db')).toBeUndefined()
      expect(at(sim, id, 'cache')).toBe('c2')
      expect(at(sim, id, 'web')).toBe('w')
    }
    sim.runFor(2_000)
    expect(sim.core(sleeper)?.status()).toBe('current')
  })

  it('a fresh peer joining late learns services older than the horizon, then becomes current', () => {
    const { sim, ids } = cluster(5, 5)
    sim.apply(ids[0] as string, [{ key: 'old', value: val('ancient') }])
    converge(sim)
    sim.runFor(2 * H)
    const [late] = sim.add(1)
    sim.start(late as string)
    expect(sim.core(late as string)?.status()).toBe('joining')
    converge(sim)
    expect(at(sim, late as string, 'old')).toBe('ancient')
    sim.runFor(2_000)
    expect(sim.core(late as string)?.status()).toBe('current')
    expect(ids.length).toBe(5)
  })

  it('after a whole-cluster outage longer than rejoinAfter, peers come back joining, converge, and promote themselves', () => {
    const { sim, ids } = cluster(5, 6)
    sim.apply(ids[0] as string, [{ key: 'web', value: val('w') }, { key: 'gone', value: val('g') }])
    sim.runFor(500)
    sim.apply(ids[1] as string, [{ key: 'gone', value: null }])
    converge(sim)
    for (const id of ids) sim.crash(id)
    sim.runFor(H)
    for (const id of ids) sim.start(id)
    for (const id of ids) expect(sim.core(id)?.status()).toBe('joining')
    converge(sim)
    expect(sim.core(ids[0] as string)?.get('gone')?.value).toBeNull() // joining peers collect nothing
    sim.runFor(H + 2_000) // promoteAfter = H
    for (const id of ids) expect(sim.core(id)?.status()).toBe('current')
    sim.runFor(3_000)
    for (const id of ids) expect(sim.core(id)?.get('gone')).toBeUndefined()
    converge(sim)
  })

  it('the documented limit: a write that only a peer held, which then stayed down past the horizon, is dropped', () => {
    const { sim, ids } = cluster(4, 7)
    const lonely = ids[2] as string
    sim.net.partition([[lonely]])
    sim.apply(lonely, [{ key: 'never-shared', value: val('x') }])
    sim.runFor(1_000)
    sim.crash(lonely)
    sim.net.heal()
    sim.runFor(2 * H)
    sim.start(lonely)
    converge(sim)
    for (const id of ids) expect(sim.core(id)?.get('never-shared')).toBeUndefined()
  })

  it('a write stamped by a clock beyond maxDrift waits until the others\' clocks come within the bound', () => {
    const sim = new StateSim({ seed: 8, wire: true, config: CFG, faults: { delay: [1, 10] } })
    const ids = sim.add(4)
    sim.start(ids[0] as string, { founder: true })
    for (const id of ids.slice(1)) sim.start(id)
    sim.runFor(3_000)
    const fast = ids[3] as string
    const p = sim.peers.get(fast)
    if (p === undefined) throw new Error('no peer')
    p.skew = 8_000 // 8 s ahead; the bound is 5 s
    let refused = 0
    sim.onEffect((_peer, eff) => { if (eff.type === 'refused' && eff.reason === 'drift') refused++ })
    sim.apply(fast, [{ key: 'web', value: val('from the future') }])
    sim.runFor(2_000)
    expect(refused).toBeGreaterThan(0)
    expect(at(sim, ids[0] as string, 'web')).toBeUndefined()
    converge(sim, 10_000)
    expect(at(sim, ids[0] as string, 'web')).toBe('from the future')
  })
})
