// Scheduler throughput of the pure reconciler: 10,000 replicas on 1,000 simulated hosts.
//   npm run bench:scheduler      (prints figures; not a test)
// Scenarios: a cold start (every replica placed in one round, spread and bin-pack, with and without
// constraints/reservations/spread labels), 10% of the hosts lost (their replicas moved), and a
// converged round (nothing to do). Each is run RUNS times; the table shows p50 and p95.
import { serviceSpecSchema, type ServiceSpec } from '../src/model/index.ts'
import { applyDecisions, reconcile, type Assignment, type NodeInfo, type ObservedReplica, type SchedulerInput, type Strategy } from '../src/scheduler/index.ts'
import { fmtMs, percentile, printTable } from './stats.ts'

const HOSTS = 1_000
const SERVICES = 100
const PER_SERVICE = 100
const RUNS = 7
const GiB = 1024 ** 3
const NOW = 1_700_000_000_000

function hosts(): NodeInfo[] {
  return Array.from({ length: HOSTS }, (_, i) => ({
    id: `peer-${String(i).padStart(4, '0')}`, name: `host-${i}`, state: 'alive', drained: false, since: 0,
    labels: { zone: `z${i % 5}`, disk: i % 2 === 0 ? 'ssd' : 'hdd' }, capacity: { milliCpu: 16_000, memoryBytes: 64 * GiB },
  }))
}

function services(rich: boolean): ServiceSpec[] {
  return Array.from({ length: SERVICES }, (_, i) =>
    serviceSpecSchema.parse({
      stack: 'bench', name: `svc-${String(i).padStart(3, '0')}`, image: 'busybox', replicas: PER_SERVICE,
      ...(rich
        ? {
            resources: { reservations: { milliCpu: 100, memoryBytes: 256 * 1024 * 1024 } },
            placement: { spread: ['zone'], constraints: i % 2 === 0 ? [{ attribute: 'node.labels', label: 'disk', op: 'in', values: ['ssd'] }] : [], maxPerNode: 2 },
            ports: i % 10 === 0 ? [{ target: 80, published: 10_000 + i }] : [],
          }
        : {}),
    }),
  )
}

function running(assignments: readonly Assignment[]): ObservedReplica[] {
  return assignments.map((a) => ({
    service: a.service, slot: a.slot, host: a.host, generation: a.generation, state: 'running', health: 'none', containerId: `c${a.slot}`,
    startedAt: NOW, exitCode: null, restarts: 0, streak: 0, streakSince: null, updatedAt: NOW,
  }))
}

interface Figure { name: string; decisions: number; ms: number[] }

function measure(name: string, input: SchedulerInput, count: (o: ReturnType<typeof reconcile>) => number): Figure {
  const ms: number[] = []
  let decisions = 0
  reconcile(input) // warm-up
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now()
    const out = reconcile(input)
    ms.push(performance.now() - t)
    decisions = count(out)
  }
  return { name, decisions, ms }
}

function scenarios(rich: boolean, strategy: Strategy): Figure[] {
  const label = `${rich ? 'constraints+resources+spread' : 'plain'}, ${strategy}`
  const base: SchedulerInput = { services: services(rich), assignments: [], observed: [], nodes: hosts(), now: NOW, config: { strategy } }
  const cold = measure(`cold start (${label})`, base, (o) => o.place.length)
  const placed = applyDecisions([], reconcile(base), { term: 1, index: 1 })
  const steady: SchedulerInput = { ...base, assignments: placed, observed: running(placed) }
  const converged = measure(`converged round (${label})`, steady, (o) => o.place.length + o.move.length + o.stop.length)
  const lost = steady.nodes.map((n, i) => (i % 10 === 4 ? { ...n, state: 'dead' as const, since: NOW - 1 } : n))
  const failover = measure(`10% hosts lost (${label})`, { ...steady, nodes: lost }, (o) => o.move.length)
  return [cold, failover, converged]
}

const figures = [...scenarios(false, 'spread'), ...scenarios(true, 'spread'), ...scenarios(true, 'binpack')]
const rows = [['scenario', 'decisions', 'p50', 'p95', 'decisions/s (p50)']]
for (const f of figures) {
  const p50 = percentile(f.ms, 50)
  rows.push([f.name, String(f.decisions), fmtMs(p50), fmtMs(percentile(f.ms, 95)), f.decisions === 0 ? '-' : Math.round(f.decisions / (p50 / 1000)).toLocaleString('en-US')])
}
printTable(`reconcile: ${SERVICES * PER_SERVICE} replicas, ${HOSTS} hosts, ${RUNS} runs each (target ≥ 10,000 placements/s)`, rows)
