import { describe, expect, it } from 'vitest'
import { randInt, randRange, seededRng, shuffled, type Rng } from '../../src/core/rng.ts'
import { StateSim } from '../../src/sim/state-cluster.ts'
import { compareEntries } from '../../src/state/store.ts'
import type { Entry, StateConfig, Write } from '../../src/state/types.ts'

/**
 * The convergence property of desired state on the deterministic simulation: random concurrent
 * applies, deletes and scales at random peers under partitions, loss (5 % or 20 %), duplication, clock skew and
 * crash/restarts (half the seeds also keep one peer down for longer than the tombstone horizon).
 * Once faults stop, every peer must hold byte-identical state within a bound; no acknowledged
 * write may be lost except to a later write of the same key; no peer's view of a key may ever go
 * back to an older version (which is what a resurrected tombstone looks like). Every message goes
 * through the wire codec and schemas. A failure names its seed; rerun one with SEED=n (STATE_SEEDS=n runs seeds 1..n; default 300).
 */
const SEEDS = process.env.SEED !== undefined ? [Number(process.env.SEED)] : Array.from({ length: Number(process.env.STATE_SEEDS ?? 300) }, (_, i) => i + 1)
const H = 30_000
const CFG: Partial<StateConfig> = { antiEntropyIntervalMs: 500, tombstoneHorizonMs: H, gcIntervalMs: 1_000, aliveEveryMs: 1_000, maxDriftMs: 5_000, historyLimit: 5 }
const FAULT_MS = 60_000
const CONVERGE_BOUND_MS = 30_000
const COLD_KEYS = 12
const KEYS = ['web', 'api', 'db', 'cache', 'queue', 'worker', 'proxy', 'metrics']

const enc = new TextEncoder()
const dec = new TextDecoder()

interface Acked {
  entry: Entry
  by: string
  exempt: boolean
}

/** A run of the property for one seed; returns the figures the test checks. */
function run(seed: number) {
  const rng: Rng = seededRng(seed ^ 0x5eed)
  const n = 5 + (seed % 6)
  // Every third seed is harsher: 20 % loss and clocks up to 2 s apart (the drift bound is 5 s).
  const harsh = seed % 3 === 0
  const sim = new StateSim({ seed, wire: true, skewMs: harsh ? 1_000 : 250, config: CFG, faults: { delay: [1, 20], loss: harsh ? 0.2 : 0.05, dup: 0.05 } })
  const ids = sim.add(n)
  const problems: string[] = []
  const acked: Acked[] = []
  let staleDrops = 0
  let collected = 0

  // No peer's view of a key ever goes back to an older version (across drops and restarts).
  const high = new Map<string, Entry>()
  sim.onEffect((peer, eff, t) => {
    if (eff.type === 'dropped') {
      if (eff.reason === 'stale') staleDrops++
      else collected++
      return
    }
    if (eff.type !== 'changed') return
    const k = `${peer}/${eff.key}`
    const before = high.get(k)
    if (before !== undefined && compareEntries(eff.entry, before) < 0) {
      problems.push(`${peer} went back on ${eff.key} at ${t}: ${show(before)} → ${show(eff.entry)}`)
    }
    if (before === undefined || compareEntries(eff.entry, before) > 0) high.set(k, eff.entry)
  })

  sim.start(ids[0] as string, { founder: true })
  for (const id of ids.slice(1)) sim.start(id)
  sim.runFor(2_000)

  const down = new Set<string>()
  const sleeper = seed % 2 === 0 ? (ids[n - 1] as string) : undefined
  const sleeperBack = seed % 4 === 0 ? FAULT_MS + 1 : 45_000 // some come back after the faults stop
  const t0 = sim.sched.now()
  let nextPartition = t0 + randRange(rng, 1_000, 4_000)
  let partitioned = false
  let nextCrash = t0 + randRange(rng, 1_000, 5_000)
  let counter = 0

  const restart = (id: string): void => {
    if (!down.has(id)) return
    down.delete(id)
    sim.start(id)
  }

  if (sleeper !== undefined) {
    sim.sched.at(t0 + 5_000, () => {
      // Writes held by no other peer's disk may be lost with the sleeper (the documented limit).
      for (const a of acked) if (a.by === sleeper && !heldElsewhere(sim, sleeper, a.entry)) a.exempt = true
      down.add(sleeper)
      sim.crash(sleeper)
    })
    sim.sched.at(t0 + sleeperBack, () => restart(sleeper))
  }

  while (sim.sched.now() - t0 < FAULT_MS) {
    const now = sim.sched.now()
    if (now >= nextPartition) {
      if (partitioned) {
        sim.net.heal()
        nextPartition = now + randRange(rng, 2_000, 5_000)
      } else {
        const groups = 2 + randInt(rng, 2)
        const order = shuffled(rng, ids)
        sim.net.partition(Array.from({ length: groups }, (_, g) => order.filter((_, i) => i % groups === g)))
        nextPartition = now + randRange(rng, 1_000, 4_000)
      }
      partitioned = !partitioned
    }
    if (now >= nextCrash) {
      nextCrash = now + randRange(rng, 2_000, 6_000)
      const candidates = sim.up().filter((id) => id !== sleeper)
      if (candidates.length > 2) {
        const victim = candidates[randInt(rng, candidates.length)] as string
        down.add(victim)
        sim.crash(victim)
        sim.sched.after(randRange(rng, 1_000, 6_000), () => restart(victim))
      }
    }
    if (rng.next() < 0.35) {
      const up = sim.up()
      const at = up[randInt(rng, up.length)]
      if (at !== undefined) {
        const writes: Write[] = []
        const early = now - t0 < 4_000
        for (let i = 1 + randInt(rng, 3); i > 0; i--) writes.push(randomWrite(sim, at, rng, `${seed}-${++counter}`, early))
        for (const r of sim.apply(at, writes)) if (r.written && r.entry !== undefined) acked.push({ entry: r.entry, by: at, exempt: false })
      }
    }
    sim.runFor(randRange(rng, 100, 400))
  }

  // Faults stop: heal, no loss, everyone back up.
  sim.net.heal()
  sim.net.setFaults({ loss: 0, dup: 0 })
  for (const id of [...down]) if (id !== sleeper || sleeperBack <= FAULT_MS) restart(id)
  sim.runFor(1)
  if (sleeper !== undefined) restart(sleeper)
  const took = sim.runUntil(() => sim.convergence() === undefined, CONVERGE_BOUND_MS, 50)
  const convergedAgain = (() => {
    // Stay quiet past the horizon: every tombstone is collected everywhere and states stay equal.
    sim.runFor(H + 5_000)
    return sim.runUntil(() => sim.convergence() === undefined, CONVERGE_BOUND_MS, 50)
  })()

  const ref = sim.core(ids[0] as string)?.entries() ?? []
  problems.push(...checkAcked(acked, ref), ...sim.violations)
  for (const id of ids) {
    const core = sim.core(id)
    if (core?.status() !== 'current') problems.push(`${id} is still ${core?.status() ?? 'down'}`)
    for (const e of core?.entries() ?? []) {
      if (e.value === null) problems.push(`${id} still holds a tombstone for ${e.key} after the horizon`)
      const last = core?.history(e.key).at(-1)
      if (last === undefined || compareEntries(last, e) !== 0) problems.push(`${id}: the last history entry of ${e.key} is not its current entry`)
    }
  }
  return { took, convergedAgain, problems, acked: acked.length, exempt: acked.filter((a) => a.exempt).length, staleDrops, collected, keys: ref.length, why: sim.convergence() }
}

/**
 * apply (a new spec), delete, or scale (a changed copy of the value this peer holds), mostly on a
 * few hot keys (conflicts); "cold" keys are created early and later only deleted, so that their
 * tombstones get collected while the sleeper still holds them.
 */
function randomWrite(sim: StateSim, at: string, rng: Rng, tag: string, early: boolean): Write {
  const cold = `cold-${randInt(rng, COLD_KEYS)}`
  if (rng.next() < 0.25) return early ? { key: cold, value: enc.encode(`image=${cold}:${tag}`) } : { key: cold, value: null }
  const key = KEYS[randInt(rng, KEYS.length)] as string
  const r = rng.next()
  if (r < 0.3) return { key, value: null }
  const held = sim.core(at)?.get(key)?.value
  if (r < 0.6 && held !== undefined && held !== null) return { key, value: enc.encode(`${dec.decode(held).split(' replicas=')[0]} replicas=${tag}`) }
  return { key, value: enc.encode(`image=${key}:${tag}`) }
}

function heldElsewhere(sim: StateSim, except: string, e: Entry): boolean {
  for (const [id, p] of sim.peers) {
    if (id === except) continue
    const held = p.disk.entries.get(e.key)
    if (held !== undefined && compareEntries(held, e) >= 0) return true
  }
  return false
}

/** Every acknowledged write survives, or a later acknowledged write to its key replaced it. */
function checkAcked(acked: Acked[], final: Entry[]): string[] {
  const out: string[] = []
  const byKey = new Map(final.map((e) => [e.key, e]))
  const keys = new Set(acked.map((a) => a.entry.key))
  for (const key of keys) {
    const all = acked.filter((a) => a.entry.key === key)
    const counted = all.filter((a) => !a.exempt).map((a) => a.entry)
    const newest = counted.reduce<Entry | undefined>((m, e) => (m === undefined || compareEntries(e, m) > 0 ? e : m), undefined)
    const f = byKey.get(key)
    if (f !== undefined && !all.some((a) => compareEntries(a.entry, f) === 0)) out.push(`${key}: final ${show(f)} was never written`)
    if (newest === undefined) continue
    // Gone is fine if a tombstone at least as new (possibly an exempt one that made it) was collected.
    const removed = all.some((a) => a.entry.value === null && compareEntries(a.entry, newest) >= 0)
    if (f === undefined && !removed) out.push(`${key}: acknowledged ${show(newest)} lost (key gone)`)
    if (f !== undefined && compareEntries(f, newest) < 0) out.push(`${key}: acknowledged ${show(newest)} lost to older ${show(f)}`)
  }
  return out
}

function show(e: Entry): string {
  return `${e.value === null ? 'tombstone' : dec.decode(e.value)}@${e.hlc.wall % 1e6}.${e.hlc.logical}/${e.hlc.node}`
}

describe('desired-state convergence (property, many seeds)', () => {
  const totals = { acked: 0, exempt: 0, staleDrops: 0, collected: 0 }
  for (const seed of SEEDS) {
    it(`seed ${seed}`, () => {
      const r = run(seed)
      if (process.env.STATE_DEBUG !== undefined) console.log(seed, { ...r, problems: r.problems.length })
      totals.acked += r.acked
      totals.exempt += r.exempt
      totals.staleDrops += r.staleDrops
      totals.collected += r.collected
      expect(r.took, `seed ${seed}: no convergence within ${CONVERGE_BOUND_MS} ms after faults stopped: ${r.why}`).not.toBeUndefined()
      expect(r.convergedAgain, `seed ${seed}: diverged after the horizon passed: ${r.why}`).not.toBeUndefined()
      expect(r.problems, `seed ${seed}`).toEqual([])
      expect(r.acked, `seed ${seed}`).toBeGreaterThan(20)
    })
  }
  it('exercised what it claims to (tombstone collection, stale drops)', () => {
    if (SEEDS.length < 8) return
    expect(totals.collected).toBeGreaterThan(0)
    expect(totals.staleDrops).toBeGreaterThan(0)
    console.log(`state property: ${SEEDS.length} seeds, ${totals.acked} acknowledged writes (${totals.exempt} exempt), ${totals.collected} tombstones collected, ${totals.staleDrops} stale entries dropped`)
  })
})
