import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { ServiceSpec } from '../../src/model/index.ts'
import { constraintMatches, reconcile, type Assignment, type NodeInfo, type SchedulerInput } from '../../src/scheduler/index.ts'
import { GiB, input, node, quiet, settle, step, svc } from './scheduler-helpers.ts'

const RUNS = Number(process.env.SKEIN_PROP_RUNS ?? 150)

// ---- generators ----

const hostArb = fc.record({
  state: fc.constantFrom<NodeInfo['state']>('alive', 'alive', 'alive', 'suspect', 'dead', 'left'),
  drained: fc.boolean(),
  zone: fc.constantFrom('a', 'b', null),
  memGiB: fc.option(fc.integer({ min: 1, max: 8 }), { nil: null }),
  cpu: fc.option(fc.integer({ min: 500, max: 4000 }), { nil: null }),
})

const serviceArb = (feasible: boolean) =>
  fc.record({
    /** 0 makes a global service (about one in ten). */
    globalRoll: fc.integer({ min: 0, max: 9 }),
    replicas: fc.integer({ min: 0, max: 8 }),
    constraint: feasible ? fc.constant(null) : fc.constantFrom(null, 'in-a', 'notIn-b'),
    maxPerNode: feasible ? fc.constant(null) : fc.constantFrom(null, 1, 2),
    memMiB: feasible ? fc.constant(null) : fc.constantFrom(null, 512, 1024, 2048),
    port: feasible ? fc.constant(null) : fc.constantFrom(null, 80, 81),
    wait: feasible ? fc.constant(false) : fc.boolean(),
    rebalance: fc.boolean(),
  })

type SvcGen = ReturnType<typeof serviceArb> extends fc.Arbitrary<infer T> ? T : never
type HostGen = typeof hostArb extends fc.Arbitrary<infer T> ? T : never

function toSpec(g: SvcGen, i: number): ServiceSpec {
  const global = g.globalRoll === 0
  const constraints = g.constraint === null ? [] : [{ attribute: 'node.labels' as const, label: 'zone', op: g.constraint === 'in-a' ? ('in' as const) : ('notIn' as const), values: [g.constraint === 'in-a' ? 'a' : 'b'] }]
  return svc(`s${i}`, {
    ...(global ? { mode: 'global' as const } : { replicas: g.replicas }),
    placement: { constraints, maxPerNode: g.maxPerNode },
    resources: { reservations: { memoryBytes: g.memMiB === null ? null : g.memMiB * 1024 * 1024, milliCpu: g.memMiB === null ? null : 250 } },
    ports: g.port === null ? [] : [{ target: 80, published: g.port }],
    onHostLoss: g.wait ? { action: 'wait', afterMs: 3_000 } : { action: 'replace' },
    rebalance: g.rebalance,
  })
}

function toNode(h: HostGen, i: number): NodeInfo {
  return node(`h${String(i).padStart(2, '0')}`, {
    name: `n${i}`, state: h.state, drained: h.drained, labels: h.zone === null ? {} : { zone: h.zone },
    capacity: { memoryBytes: h.memGiB === null ? null : h.memGiB * GiB, milliCpu: h.cpu },
  })
}

/** A fault: host i takes a new state or drain flag at round r. */
const faultArb = fc.record({ host: fc.nat(), state: fc.constantFrom<NodeInfo['state']>('alive', 'suspect', 'dead', 'left'), drained: fc.boolean() })

const scenarioArb = (feasible: boolean) =>
  fc.record({
    hosts: fc.array(hostArb, { minLength: 1, maxLength: 7 }),
    services: fc.array(serviceArb(feasible), { minLength: 1, maxLength: 4 }),
    faults: fc.array(fc.array(faultArb, { maxLength: 2 }), { maxLength: 8 }),
    binpack: fc.boolean(),
  })

function applyFaults(nodes: NodeInfo[], faults: { host: number; state: NodeInfo['state']; drained: boolean }[], now: number): NodeInfo[] {
  const out = [...nodes]
  for (const f of faults) {
    const i = f.host % out.length
    const n = out[i]!
    out[i] = { ...n, state: f.state, drained: f.drained, since: f.state === n.state ? n.since : now }
  }
  return out
}

// ---- invariants ----

function checkPlacementsSafe(state: SchedulerInput, specs: Map<string, ServiceSpec>): void {
  const out = reconcile(state)
  const byId = new Map(state.nodes.map((n) => [n.id, n]))
  for (const target of [...out.place.map((p) => ({ s: p.service, h: p.host })), ...out.move.map((m) => ({ s: m.service, h: m.to }))]) {
    const n = byId.get(target.h)
    const spec = specs.get(target.s)!
    expect(n?.state, `${target.s} placed on ${target.h}`).toBe('alive')
    expect(n?.drained).toBe(false)
    for (const c of spec.placement.constraints) expect(constraintMatches(n!, c)).toBe(true)
  }
}

function checkHostsWithinLimits(assignments: readonly Assignment[], nodes: readonly NodeInfo[], specs: Map<string, ServiceSpec>): void {
  const byHost = new Map<string, Assignment[]>()
  for (const a of assignments) byHost.set(a.host, [...(byHost.get(a.host) ?? []), a])
  for (const n of nodes) {
    const here = (byHost.get(n.id) ?? []).filter((a) => specs.has(a.service))
    let mem = 0
    const ports = new Set<number>()
    const count = new Map<string, number>()
    for (const a of here) {
      const spec = specs.get(a.service)!
      mem += spec.resources.reservations.memoryBytes ?? 0
      for (const p of spec.ports) {
        if (p.published === null) continue
        expect(ports.has(p.published), `port ${p.published} twice on ${n.id}`).toBe(false)
        ports.add(p.published)
      }
      count.set(a.service, (count.get(a.service) ?? 0) + 1)
      if (spec.placement.maxPerNode !== null) expect(count.get(a.service)!).toBeLessThanOrEqual(spec.placement.maxPerNode)
    }
    if (n.capacity.memoryBytes !== null) expect(mem).toBeLessThanOrEqual(n.capacity.memoryBytes)
  }
}

/** Run the fault rounds, checking safety at every round; returns the state once faults stop. */
function runFaults(sc: { hosts: HostGen[]; services: SvcGen[]; faults: { host: number; state: NodeInfo['state']; drained: boolean }[][]; binpack: boolean }) {
  const specList = sc.services.map(toSpec)
  const specs = new Map(specList.map((s) => [s.name, s]))
  let state: SchedulerInput = input({ services: specList, nodes: sc.hosts.map(toNode), config: { strategy: sc.binpack ? 'binpack' : 'spread' } })
  for (const faults of sc.faults) {
    state = { ...state, now: state.now + 1_000 }
    state = { ...state, nodes: applyFaults(state.nodes as NodeInfo[], faults, state.now) }
    checkPlacementsSafe(state, specs)
    state = step(state).state
    checkHostsWithinLimits(state.assignments, state.nodes, specs)
  }
  return { state: { ...state, now: state.now + 60_000 }, specs }
}

function runningOf(state: SchedulerInput, service: string): number {
  const up = new Set(state.nodes.filter((n) => n.state === 'alive' || n.state === 'suspect').map((n) => n.id))
  const claimed = new Set(state.assignments.map((a) => `${a.service}/${a.slot}/${a.host}/${a.generation}`))
  return state.observed.filter((o) => o.service === service && o.state === 'running' && up.has(o.host) && claimed.has(`${o.service}/${o.slot}/${o.host}/${o.generation}`)).length
}

describe('scheduler properties', () => {
  it('never places on dead, drained or non-matching hosts; never exceeds max per node, ports or memory', () => {
    fc.assert(fc.property(scenarioArb(false), (sc) => {
      const { state, specs } = runFaults(sc)
      const end = settle(state)
      checkHostsWithinLimits(end.state.assignments, end.state.nodes, specs)
    }), { numRuns: RUNS })
  })

  it('once faults stop it settles: nothing more to do, nothing runs twice, running + pending = desired', () => {
    fc.assert(fc.property(scenarioArb(false), (sc) => {
      const { state } = runFaults(sc)
      const end = settle(state)
      expect(end.quiet).toBe(true)
      const final = reconcile(end.state)
      expect(quiet(final)).toBe(true)
      const up = new Set(end.state.nodes.filter((n) => n.state === 'alive' || n.state === 'suspect').map((n) => n.id))
      for (const spec of end.state.services) {
        const active = end.state.observed.filter((o) => o.service === spec.name && up.has(o.host) && o.state === 'running')
        const slots = new Set(active.map((o) => o.slot))
        expect(slots.size, `${spec.name} runs a slot twice`).toBe(active.length)
        if (spec.mode !== 'replicated') continue
        expect(active.length).toBeLessThanOrEqual(spec.replicas ?? 0)
        const pending = final.pending.filter((p) => p.service === spec.name && (p.host === null || !up.has(p.host))).length
        expect(runningOf(end.state, spec.name) + pending).toBe(spec.replicas ?? 0)
      }
    }), { numRuns: RUNS })
  })

  it('EventuallyAsDesired: when capacity allows, running equals desired and stays so', () => {
    fc.assert(fc.property(scenarioArb(true), (sc) => {
      const { state } = runFaults(sc)
      const live = state.nodes.filter((n) => n.state === 'alive' && !n.drained)
      fc.pre(live.length > 0)
      const end = settle(state)
      expect(end.quiet).toBe(true)
      expect(quiet(reconcile(end.state))).toBe(true)
      for (const spec of end.state.services) {
        const want = spec.mode === 'global' ? live.length : (spec.replicas ?? 0)
        const running = end.state.observed.filter((o) => o.service === spec.name && o.state === 'running' && live.some((n) => n.id === o.host))
        if (spec.mode === 'global') expect(running.length).toBe(want)
        else expect(runningOf(end.state, spec.name)).toBe(want)
      }
    }), { numRuns: RUNS })
  })

  it('same input, same output (a shuffled input too)', () => {
    fc.assert(fc.property(scenarioArb(false), fc.integer(), (sc, seed) => {
      const { state } = runFaults(sc)
      const rot = (xs: readonly unknown[]) => { const k = Math.abs(seed) % Math.max(1, xs.length); return [...xs.slice(k), ...xs.slice(0, k)] }
      const shuffled = { ...state, nodes: rot(state.nodes), services: rot(state.services), assignments: rot(state.assignments), observed: rot(state.observed) } as SchedulerInput
      expect(reconcile(shuffled)).toEqual(reconcile(state))
    }), { numRuns: RUNS })
  })
})
